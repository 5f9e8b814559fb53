"""slurm: sbatch templates, the submitter, chained jobs and status."""
