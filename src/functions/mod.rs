//! Test functions with known coefficients (in progress).
