//! The routing information bases and the decision process. Pure: no I/O.

pub mod policy;
