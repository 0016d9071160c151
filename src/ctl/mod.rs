//! Control socket: protocol and client. (to come)
