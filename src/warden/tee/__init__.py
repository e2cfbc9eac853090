"""Layer 4: devnet TDX simulation (mock Intel PKI, nodes, CVMs, guest agent).

- `pki`: `MockIntelPki`, a devnet root CA, PCK Platform CA, TCB signing key, CRLs and matching collateral;
  quotes verify with `dcap_qvl.verify_with_root_ca(quote, collateral, pki.root_ca_der, now)` and never
  under Intel's root.
- `quote`: `build_tdx_quote`, TDX v4 quotes whose QE report is signed by a platform's PCK key.
- `node`: `SimNode`, a host with a persistent PPID (device_id = sha256(PPID)) that `rotate_ppid` replaces.
- `cvm`: `SimCvm`, dstack's runtime events in RTMR3 and a GetQuote-shaped answer.
"""
