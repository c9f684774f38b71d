"""Study reports: aggregation of runs, statistics tables, figures and the self-contained HTML report.

``rlmu aggregate|stats|report STUDY_DIR`` (``rlmu.report.cli``) run the steps; each step is also a plain
function: ``aggregate.aggregate_study``, ``tables.compute_stats``, ``figures.make_figures``,
``html.render_report`` (its page and macros are package data in ``templates/``, fed by ``render``).
"""
