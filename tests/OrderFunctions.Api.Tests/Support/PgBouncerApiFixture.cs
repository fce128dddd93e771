using OrderFunctions.Testing;

namespace OrderFunctions.Api.Tests.Support;

/// <summary>
/// <see cref="ApiFixture"/> with the host reaching its database through the test infrastructure's PgBouncer in
/// transaction pooling mode, as the app reaches Azure's built-in PgBouncer. Arranging and inspecting stay direct.
/// </summary>
public class PgBouncerApiFixture : ApiFixture
{
    private PgBouncer? _bouncer;

    public PgBouncer Bouncer => _bouncer ?? throw new InvalidOperationException("the fixture is not initialized");

    protected override string HostConnectionString => Bouncer.AppConnectionString(DatabaseName);

    public override async Task InitializeAsync()
    {
        _bouncer = await PgBouncer.GetAsync();
        await base.InitializeAsync();
    }
}
