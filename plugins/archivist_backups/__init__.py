"""The Backups page of the Airflow UI: an API and a page over the backup bucket.

Imported by plugins/archivist_ui.py when the API server first serves /archivist;
plugins/.airflowignore keeps Airflow from loading these modules as plugins.
"""
