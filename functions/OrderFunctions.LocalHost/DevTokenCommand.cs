using OrderFunctions.Core.Auth;
using OrderFunctions.Core.Configuration;

namespace OrderFunctions.LocalHost;

internal static class DevTokenCommand
{
    public static bool TryRun(string[] args, IConfiguration configuration)
    {
        if (args.Length == 0 || args[0] != "dev-token")
        {
            return false;
        }

        if (args.Length < 2 || !Guid.TryParse(args[1], out var userId))
        {
            Console.Error.WriteLine("usage: OrderFunctions.LocalHost dev-token <user-uuid> [--admin]");
            Environment.ExitCode = 2;
            return true;
        }

        var settings = OrderFunctionsSettings.Load(configuration);
        Console.WriteLine(DevTokens.Create(settings.Auth, userId, admin: args.Contains("--admin")));
        return true;
    }
}
