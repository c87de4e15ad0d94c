//! Ptrace platform (to be written).
