namespace OrderFunctions.Jobs.Tests;

// The same tests with the jobs reaching PostgreSQL through a real PgBouncer in transaction pooling mode, as in
// Azure. The advisory lock is transaction-scoped and held by an open transaction, which keeps its server
// connection for as long as it is open; a session-level lock would stay with whichever client got that server
// connection next.

/// <summary><see cref="JobLockTests"/> through PgBouncer (transaction pooling).</summary>
public sealed class JobLockThroughPgBouncerTests : JobLockTests
{
    protected override bool ThroughPgBouncer => true;
}

/// <summary><see cref="OrphanScanJobTests"/> through PgBouncer (transaction pooling).</summary>
public sealed class OrphanScanJobThroughPgBouncerTests : OrphanScanJobTests
{
    protected override bool ThroughPgBouncer => true;
}

/// <summary><see cref="AuditRetentionJobTests"/> through PgBouncer (transaction pooling).</summary>
public sealed class AuditRetentionJobThroughPgBouncerTests : AuditRetentionJobTests
{
    protected override bool ThroughPgBouncer => true;
}
