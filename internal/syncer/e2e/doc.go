// Package e2e holds the engine's end-to-end tests on real @web5/dwn-server processes. They are
// a package of their own so that each package's tests stay within the time budget on two
// cores; there is no non-test code here.
package e2e
