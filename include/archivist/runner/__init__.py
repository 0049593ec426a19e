"""What the DAGs and the command run: the pre-flight check, the backup and the restore."""
