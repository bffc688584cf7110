//! The failover network's member-to-member endpoints, on the license port: the Raft calls
//! (`POST /members/v1/raft/append | vote | snapshot`) that [`crate::failover::calls`] makes, and
//! the members' own ([`members`]: hello, heartbeats, outbox; [`forward`]: a client's request
//! passed on to the coordinator, and the layer that passes them on).
//!
//! Each call must be signed by a member of the network ([`crate::failover::envelope`]); anything
//! else is `401 MEMBER_REFUSED` before its body is even parsed. The answer (openraft's result as
//! JSON, or the endpoint's) is signed by this member together with the call's signature, so the
//! caller knows it comes from the member it called and answers this very call.

pub mod forward;
pub mod members;
pub mod raft;
pub mod signing;

#[cfg(test)]
mod tests;
