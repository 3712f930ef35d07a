@echo off
rem Completion shim for kubectl (>= 1.26) on Windows: kubectl runs
rem kubectl_complete-mcs from PATH with the words typed after "kubectl mcs".
kubectl mcs __complete %*
