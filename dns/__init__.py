"""The cluster DNS (the CoreDNS role): answers for cluster.local from informer caches."""
