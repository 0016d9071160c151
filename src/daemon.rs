//! The poll loop. (to come)
