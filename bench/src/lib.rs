//! Vela's benchmarks: criterion micro-benchmarks live in `benches/`, the ANN recall/QPS harness
//! (which also speaks `../shared/tools/peers.py`'s external-peer contract) in `src/bin/`.
//! Figures and the commands that reproduce them go to `RESULTS.md`.
