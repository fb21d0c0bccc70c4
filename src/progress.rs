//! Terminal output of long-running commands: the only module that uses
//! indicatif.
