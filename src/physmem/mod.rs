//! Guest physical memory (to be written).
