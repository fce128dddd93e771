using OrderFunctions.LocalHost;

// The same handlers and schedules as the Azure Functions app, on Kestrel, for machines without Core Tools.
// `dev-token <user-uuid> [--admin]` prints a token signed with the local Auth__SigningKey instead.
var builder = WebApplication.CreateBuilder(args);
builder.AddOrderFunctionsLocalHost();
if (DevTokenCommand.TryRun(args, builder.Configuration))
{
    return;
}

var app = builder.Build();
app.MapOrderFunctions();
app.Run();

/// <summary>Entry point type, public for WebApplicationFactory in the tests.</summary>
public partial class Program;
