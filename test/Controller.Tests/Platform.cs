// The controller is Linux-only (processes, FIFOs, signals), and so are its tests.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
