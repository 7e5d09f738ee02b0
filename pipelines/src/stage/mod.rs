pub mod balance;
pub mod dedup;
pub mod maglev;
