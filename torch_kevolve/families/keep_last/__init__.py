"""The keep_last family: kevolve::keep_last, the gather of batch event truncation (each segment's last events)."""
