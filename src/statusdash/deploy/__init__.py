"""``statusdash agent deploy``: install, enroll and start agents on hosts over SSH."""
