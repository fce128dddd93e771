using System.Globalization;

namespace OrderFunctions.Testing;

/// <summary>
/// Per-run directories for local servers under one root per OS user: <c>{temp}/orderfunctions-tests-{user}/{kind}/{pid}-{random}</c>.
/// The owning process id is in the name, so a later run can tell a crashed run's leftovers from a live one's.
/// </summary>
internal static class ScratchDirectories
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), $"orderfunctions-tests-{Environment.UserName}");

    public static string Create(string kind)
    {
        var parent = Path.Combine(Root, kind);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(parent);
        }
        else
        {
            // Traversable by the postgres OS user when tests run as root.
            Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            Directory.CreateDirectory(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        var path = Path.Combine(parent, $"{Environment.ProcessId}-{Guid.NewGuid():N}"[..24]);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Directories of <paramref name="kind"/> whose owning test process is gone.</summary>
    public static IEnumerable<string> Abandoned(string kind)
    {
        var parent = Path.Combine(Root, kind);
        if (!Directory.Exists(parent))
        {
            yield break;
        }

        foreach (var directory in Directory.EnumerateDirectories(parent))
        {
            var name = Path.GetFileName(directory);
            var dash = name.IndexOf('-', StringComparison.Ordinal);
            if (dash > 0 && int.TryParse(name.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var owner) && owner != Environment.ProcessId && !IsAlive(owner))
            {
                yield return directory;
            }
        }
    }

    public static bool IsAlive(int processId)
    {
        if (OperatingSystem.IsLinux())
        {
            return Directory.Exists($"/proc/{processId}");
        }

        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    public static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TestLog.Write($"could not delete {directory}: {e.Message}");
        }
    }
}
