// Every test fixture may run in parallel with the others; tests keep their own temp dirs and sockets.
[assembly: NUnit.Framework.Parallelizable(NUnit.Framework.ParallelScope.Fixtures)]
