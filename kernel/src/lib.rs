//! Linux FIB over netlink. TO BE IMPLEMENTED.
