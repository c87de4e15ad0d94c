//! UML COW files and ubd block devices (to be written).
