"""The map_id family: MapId's fused vocabulary lookup (kevolve::map_id)."""
