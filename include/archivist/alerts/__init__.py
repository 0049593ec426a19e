"""The DAGs' alerts: a mail when a task fails, a run times out or misses its deadline, and, when
asked, when a run succeeds. `message` writes them, `mail` sends them through the SMTP provider's
SmtpNotifier, `callbacks` is what the DAGs hand to Airflow. Airflow and the provider are imported
only when an alert is due, so the DAG files parse without them."""
