"""What people read: the Raw data report and its CSV, and the inbox list (`report`), the dashboard
(`dashboard`) and its exact daily roll-up kept by the database (`rollup`)."""
