// blktapctrl drives Linux processes, FIFOs and signals; it runs nowhere else.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
