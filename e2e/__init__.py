"""End-to-end harness: tool builds (tools.sh) and a real control plane (cluster.py)."""
