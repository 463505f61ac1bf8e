package msg

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"

	gocid "github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Record data CIDs (docs/protocol-notes.md#data-cids): dwn-sdk-js imports data with the
// UnixFS importer's defaults — 262,144-byte chunks stored as CIDv1 raw leaves, a data set of
// one chunk is that leaf's CID ("bafkrei…"), more chunks hang under dag-pb UnixFS file nodes
// of at most 174 links, built level by level (balanced layout) up to one root ("bafybei…").

const (
	unixfsChunkSize = 262_144
	unixfsMaxLinks  = 174
	codecDagPB      = 0x70
)

// chunkBuffers recycles DataCID's chunk buffer: every applied record is checked against its
// dataCid, and a fresh 256 KiB buffer each time (for a few bytes of data, usually) was most of
// the garbage of a bootstrap and of seeding a dwntest node.
var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, unixfsChunkSize); return &b }}

// dagNode is one node of the import: a raw leaf or a file node.
type dagNode struct {
	cid      gocid.Cid
	tsize    uint64 // bytes of this block and everything under it (dag-pb Tsize)
	fileSize uint64 // file bytes under it (UnixFS blocksize)
}

// DataCID returns descriptor.dataCid and the byte count of data read from r to EOF. It
// streams: memory is one chunk plus ~50 bytes per chunk.
func DataCID(r io.Reader) (string, int64, error) {
	bp := chunkBuffers.Get().(*[]byte)
	defer chunkBuffers.Put(bp)
	buf := *bp
	var leaves []dagNode
	var total int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 || len(leaves) == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			sum, herr := multihash.Sum(buf[:n], multihash.SHA2_256, -1)
			if herr != nil {
				return "", 0, herr
			}
			leaves = append(leaves, dagNode{cid: gocid.NewCidV1(codecRaw, sum), tsize: uint64(n), fileSize: uint64(n)})
			total += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return "", total, err
		}
	}
	if len(leaves) == 1 {
		return leaves[0].cid.String(), total, nil // reduceSingleLeafToSelf
	}
	level := leaves
	for {
		next := make([]dagNode, 0, (len(level)+unixfsMaxLinks-1)/unixfsMaxLinks)
		for start := 0; start < len(level); start += unixfsMaxLinks {
			node, err := fileNode(level[start:min(start+unixfsMaxLinks, len(level))])
			if err != nil {
				return "", total, err
			}
			next = append(next, node)
		}
		if len(next) == 1 {
			return next[0].cid.String(), total, nil
		}
		level = next
	}
}

// fileNode encodes a dag-pb node (links first, then Data) whose Data is a UnixFS File with
// filesize and one blocksize per child, exactly as @ipld/dag-pb and ipfs-unixfs write them.
func fileNode(children []dagNode) (dagNode, error) {
	if len(children) == 0 {
		return dagNode{}, errors.New("unixfs: node without children")
	}
	var unixfs []byte
	unixfs = append(unixfs, 0x08, 0x02) // Type = File
	var fileSize, childTsize uint64
	for _, c := range children {
		fileSize += c.fileSize
		childTsize += c.tsize
	}
	unixfs = append(unixfs, 0x18)
	unixfs = binary.AppendUvarint(unixfs, fileSize)
	for _, c := range children {
		unixfs = append(unixfs, 0x20) // blocksizes, proto2 repeated (not packed)
		unixfs = binary.AppendUvarint(unixfs, c.fileSize)
	}
	var block []byte
	for _, c := range children {
		hash := c.cid.Bytes()
		var link []byte
		link = append(link, 0x0a)
		link = binary.AppendUvarint(link, uint64(len(hash)))
		link = append(link, hash...)
		link = append(link, 0x12, 0x00) // Name: "" (present, empty)
		link = append(link, 0x18)
		link = binary.AppendUvarint(link, c.tsize)
		block = append(block, 0x12)
		block = binary.AppendUvarint(block, uint64(len(link)))
		block = append(block, link...)
	}
	block = append(block, 0x0a)
	block = binary.AppendUvarint(block, uint64(len(unixfs)))
	block = append(block, unixfs...)
	sum, err := multihash.Sum(block, multihash.SHA2_256, -1)
	if err != nil {
		return dagNode{}, err
	}
	return dagNode{cid: gocid.NewCidV1(codecDagPB, sum), tsize: uint64(len(block)) + childTsize, fileSize: fileSize}, nil
}
