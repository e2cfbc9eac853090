"""`warden probe`: runs inside any dstack CVM and proves to the control plane which machine the CVM is on.

A fresh nonce from the control plane → a quote from the CVM's own guest agent (dstack-sdk `get_quote`)
whose report_data binds that nonce and the node's name → quote and event log posted back, verified there,
and the node's PPID, device id and identity history recorded. See docs/probe.md.
"""
