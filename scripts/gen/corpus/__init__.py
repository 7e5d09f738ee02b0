"""The conformance corpus: small captures shaped like each cloud's mirror output, each with the
broker config to replay it and what the broker must emit, computed here and not by the broker.

Modules:

* `packets`: `Packet`, one input frame with what its builder knows about it (outer source, VNI,
  the frame the broker must hand on, the inner flow, which packet it is a copy of), and the
  builders of frames that are not conversation traffic: outer VLAN tags, VXLAN on another port,
  nested tunnels, untunnelled frames, and one deliberately broken frame per malformed reason;
* `model`: the broker configuration as data (sessions, filters, tool groups), rendered as the
  case's `config.toml`, and `expect()`, which walks the packets through the documented
  behaviour (allowlist, session, filter with direction, dedup, balance, slicing) and returns the
  frames each tool port must emit and every counter of the exit summary;
* `cases`: the cases;
* `write`: pcap files, `expected.json` and the case directory.

The expectation never parses a frame: everything it decides on (flow, direction, VNI, copy
relation, truncation) comes from how the frame was built. The generator is deterministic, like
mirrorgen: one seed per case, timestamps from the packet index, no `hash()` of strings.
"""
