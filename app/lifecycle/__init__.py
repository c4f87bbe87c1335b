"""One lifecycle for every match record: its statuses, the pure transition function, the one place that
applies a transition, and the ordered feed of receipts and status changes."""
