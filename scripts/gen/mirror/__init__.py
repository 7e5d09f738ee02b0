"""mirrorgen's library: deterministic captures of what cloud traffic mirrors deliver.

Modules, from the inside out:

* `inner`, `traffic`, `sized`: the mirrored traffic itself (hosts, conversations, exact-size flows);
* `tunnels`: VXLAN/GENEVE headers and outer IPv4/IPv6 + UDP;
* one module per mirror format: `aws` (VPC Traffic Mirroring), `gwlb` (GENEVE from a Gateway Load
  Balancer around the AWS VXLAN packet), `azure` (virtual network TAP), `geneve` (generic GENEVE,
  Ethernet with options or bare IP), `vxlan6` (VXLAN over an IPv6 underlay);
* `scenario`: conversation templates → interleaved mirrored packets; `profiles`: the named setups;
* `output`: pcap files (single or split like RSS) and JSON sidecars.

Nothing reads the clock or Python's per-process string hash: a seed gives byte-identical files.
"""
