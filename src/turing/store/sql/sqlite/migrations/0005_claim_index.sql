-- 0005: drop the (workflow, status) index: it led the planner to fetch every pending task of
-- a workflow and sort them on each claim, instead of walking the claim index and stopping.
DROP INDEX turing_tasks_status;
