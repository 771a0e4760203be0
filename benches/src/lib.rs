//! Benchmarks and side-by-side harnesses against real peers (ssh -L, stunnel, slapd); they arrive with the capabilities they measure.
