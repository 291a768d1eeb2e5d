// Entry point; the worker issue fills in the behaviour.
Console.Error.WriteLine("tapdisk: not built yet");
return 38; // ENOSYS
