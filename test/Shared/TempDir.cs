namespace BlkTapCtrl.Testing;

/// <summary>
/// A private temporary directory for one test (files, unix sockets, FIFOs), deleted on dispose.
/// Kept short because unix socket paths are limited to 107 bytes.
/// </summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; }

    public TempDir(string prefix = "bt")
    {
        Path = Directory.CreateTempSubdirectory(prefix).FullName;
    }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
