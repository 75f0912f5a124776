"""Training algorithms. Most are `generic.OptimizerSubmission` plus a YAML in conf/submission/."""
