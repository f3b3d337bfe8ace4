//! Helpers shared by torsion's integration tests: blocking clients on
//! 127.0.0.1 and bounded waits.
