// Entry point; the component's issue fills in the behaviour.
Console.Error.WriteLine($"{AppDomain.CurrentDomain.FriendlyName}: not built yet");
return 38; // ENOSYS
