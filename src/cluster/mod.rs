//! Cluster: who holds which group. A pure state machine. (implementation to come)
