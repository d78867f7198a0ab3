"""The KPI report for people: a text table and a chart, from the figures of `casework.kpi`."""
