"""Watch and alert: follow each registered app's contract and the fleet's node identities, raise alerts
(drift before the next reboot, compose hashes no longer allowed, changes not made through warden,
allowAnyDevice on, ownership moved), deliver them to the workspace's webhooks, expose Prometheus metrics."""
