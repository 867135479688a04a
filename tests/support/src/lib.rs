//! Helpers shared by the test crates (`tests/api`, `tests/spin`, the host's adapter tests): a real
//! SMTP server on loopback that keeps what it receives ([`smtp`]), and a real Redis server the test
//! can stop and start again ([`redis`]), fresh PostgreSQL databases ([`postgres`]).

pub mod postgres;
pub mod redis;
pub mod smtp;
