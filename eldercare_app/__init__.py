"""The composition root: the `eldercare` command, process wiring, local services, demo,
privacy jobs and MQTT accounts; the only package that imports every stage."""
