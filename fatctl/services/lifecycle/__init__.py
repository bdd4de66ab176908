"""Lifecycle operations of an agent beyond provision and destroy (issue 18): resumable, audited
runs recorded in `lifecycle_ops`; nothing imports this package back.

- `ops`: `lifecycle_op` (open or continue an agent's op under its lease; steps kept across
  reruns), `ops_of`; reading an agent's unfinished op (`open_op`, `refuse_if_open`) is
  `services.common.open_ops`, which the flows outside the ops use.
- `suspend`: `suspend` (backup, snapshot?, server deleted with IPs and DNS kept) and `resume`
  (a new server on the kept IPs, the backup the suspend took restored before the gateway starts).
- `move`: `move` (backup with the old gateway kept stopped, a replacement on new primary IPs
  in another location, that backup restored, health, DNS, HTTPS, then the old box retired and
  the new one promoted) and its `preview`.
- `archive`: `archive` (backup, verify, DNS and server and IPs released, kept until
  `purge_after`) and `purge` (R2 prefix and every sealed secret deleted: crypto-shredding).
"""
