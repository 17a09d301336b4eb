"""The service dataplane (the kube-proxy role): Services + EndpointSlices -> nftables, in the node agent."""
