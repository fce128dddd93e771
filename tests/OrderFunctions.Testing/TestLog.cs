namespace OrderFunctions.Testing;

/// <summary>
/// One-line diagnostics on stderr, where they reach the console of <c>dotnet test</c> and CI logs
/// whatever the test framework does with stdout.
/// </summary>
public static class TestLog
{
    public static void Write(string message) => Console.Error.WriteLine($"[OrderFunctions.Testing] {message}");
}
