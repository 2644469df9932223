//! The leoflow command-line tool and the Lite edition.
//!
//! Skeleton only: nothing is implemented yet; issues #5, #7 and #8 fill this crate.
